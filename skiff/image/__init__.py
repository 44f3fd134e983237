"""Images: references, the local content store, secure layer unpacking, archives.

Import the submodules directly (``skiff.image.store``); this package keeps its
own import cheap for the ``skiff run`` hot path.
"""
