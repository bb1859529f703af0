"""`perse.create`: one portrait in, an editable, animatable avatar out (texture, dataset, training)."""
