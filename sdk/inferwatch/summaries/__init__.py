"""What goes into and comes out of a model: input and prediction summaries, data checks."""
