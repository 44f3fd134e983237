# The C module behind signal.py: skiff's runtime imports it directly (signal.py builds enums at import,
# milliseconds of every create). typeshed has no stub for it; its names are signal.py's.
from signal import *
