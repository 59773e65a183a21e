"""A searchable index of a video collection: SQLite catalogue, vector shards, extraction of
what is missing (`build`), audio-visual fusion of scores (`fusion`) and the duplicates report."""
