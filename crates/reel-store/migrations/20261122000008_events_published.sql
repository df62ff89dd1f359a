-- Events are relayed from this outbox to NATS JetStream when a node is
-- given --nats-url; published_ms records when the stream acknowledged one.
ALTER TABLE events ADD COLUMN published_ms BIGINT;
