"""Tumbling windows shared by drift, feedback and ranking: labels, roll-ups, the closing thread."""
