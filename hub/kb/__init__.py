"""The knowledge base: articles and passages in the store, the index of each process, answer suggestions and feedback."""
