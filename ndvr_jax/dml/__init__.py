"""DML (ndvr-dml): the metric-learning MLP, its triplets and group labels, training, embeddings,
and its cross-validated experiment on the demo benchmark."""
