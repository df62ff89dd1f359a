-- The region steering placed the viewer in, so fill can forecast per region.
ALTER TABLE streams ADD COLUMN region TEXT;
ALTER TABLE viewing_events ADD COLUMN region TEXT;
