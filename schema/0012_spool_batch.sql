-- Which spool batch each raw row was written in (src/sink/writer.rs): an insert whose outcome
-- is unknown (a timeout, a connection lost, ClickHouse killed mid-insert) is checked by this id
-- before it is retried, so that a batch is stored once. Rows stored before have 0.
--
-- Not personal: a hash of the collector's spool id and a file position.
ALTER TABLE events ADD COLUMN spool_batch UInt64;
