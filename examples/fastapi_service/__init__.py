"""A FastAPI fraud-scoring service instrumented with inferwatch, and a load generator for it."""
