"""The command-line entry points (console scripts): ``talkverse-generate`` (``generate``) and ``talkverse-train``
(``train``); ``args`` holds the flags they share with the web app."""
