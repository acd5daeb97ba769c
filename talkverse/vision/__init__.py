"""Faces, mouths and skeletons from frames (docs/curation.md, evaluation.md §2): the one owner of the lip-sync
measure (``lipsync``, used by ``talkverse.eval`` and the curation), mouth readouts (``mouth``), speech energy
(``energy``), the lag scan (``sync``), face detection and identity-stable tracks (``faces``) and whole-body skeletons
in the DWPose layout (``wholebody``). mediapipe is imported only when a function needs it."""
