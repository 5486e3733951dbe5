-- A counter bumped by every write that can change how a product is rendered
-- (products, their votes, their owners' and voters' names): the same idea as
-- the SQLite migration of this version. The list endpoint caches rendered
-- pages and reuses one only while the counter has not moved, so a write by
-- any replica, on any host, invalidates every replica's cache.
--
-- Statement-level triggers: one bump per statement, not per row. The bump is
-- an UPDATE of one row, so it commits (or rolls back) with the write that
-- caused it; a sequence would not (nextval is not transactional) and could
-- let a reader cache the old page under the new number.
CREATE TABLE IF NOT EXISTS change_counter (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO change_counter (id, generation) VALUES (1, 0) ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION bump_change_counter() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_counter SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER products_changed AFTER INSERT OR UPDATE OR DELETE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION bump_change_counter();
CREATE TRIGGER votes_changed AFTER INSERT OR UPDATE OR DELETE ON product_votes
    FOR EACH STATEMENT EXECUTE FUNCTION bump_change_counter();
CREATE TRIGGER users_changed AFTER UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION bump_change_counter();
