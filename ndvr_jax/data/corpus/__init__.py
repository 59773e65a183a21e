"""Real media from Debian packages for training and for an independent test set.

`sources` declares the packages (role `train` or `test`, disjoint; reserved ones refused),
`debian` fetches and unpacks them and reads licences, `collect` picks and describes the files
(`media.json`), `pool` loads them, `render` draws them with the demo benchmark's renderer,
`sound_plan` makes sound tracks of music or speech, `training` builds the unlabelled corpus,
`copy_classes` and `audio_ops` define the test set's copy transformations, `testset` builds it.
"""
