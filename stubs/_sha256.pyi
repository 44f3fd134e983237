# The C sha256 behind hashlib (Python 3.11; 3.12 calls it _sha2): skiff's seccomp cache key uses it to
# skip hashlib's OpenSSL import. typeshed has no stub for it; it makes hashlib's sha256 objects.
from hashlib import sha256 as sha256
