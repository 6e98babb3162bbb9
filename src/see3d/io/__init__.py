"""Reading and writing files: images, videos, camera formats, view folders (atomic writes)."""
