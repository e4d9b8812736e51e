"""Rules and use cases over the store interfaces; no HTTP, no drivers."""
