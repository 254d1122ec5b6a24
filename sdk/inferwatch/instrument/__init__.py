"""On the request thread: `monitor`, `inference` (+ `Stage`), the request scope, observers."""
