"""Tests of skiff.image: references, the store, unpacking, archives, the image CLI."""
