"""The curation pipeline (docs/curation.md): raw videos -> TalkVerse training data, one module per stage."""
