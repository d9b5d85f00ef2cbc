"""The bus: pika topology, confirming publisher, consumer loop, inbox/outbox, in-memory bus."""
