"""Tests of skiff.storage: overlay root filesystems."""
