"""Media I/O and constants, the bottom layer (docs/architecture.md): audio decoding, images, the video reader and the
streaming mp4 writer, and the size tables. Nothing here knows about models."""
