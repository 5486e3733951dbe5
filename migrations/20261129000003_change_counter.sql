-- A counter bumped by every write that can change how a product is rendered
-- (products, their votes, their owners' and voters' names). The list endpoint
-- caches rendered pages and reuses one only while the counter has not moved,
-- so writes from any process sharing the file invalidate every replica's cache.
CREATE TABLE IF NOT EXISTS change_counter (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT OR IGNORE INTO change_counter (id, generation) VALUES (1, 0);

CREATE TRIGGER IF NOT EXISTS products_changed_insert AFTER INSERT ON products
BEGIN UPDATE change_counter SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS products_changed_update AFTER UPDATE ON products
BEGIN UPDATE change_counter SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS products_changed_delete AFTER DELETE ON products
BEGIN UPDATE change_counter SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS votes_changed_insert AFTER INSERT ON product_votes
BEGIN UPDATE change_counter SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS votes_changed_update AFTER UPDATE ON product_votes
BEGIN UPDATE change_counter SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS votes_changed_delete AFTER DELETE ON product_votes
BEGIN UPDATE change_counter SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS users_changed_update AFTER UPDATE ON users
BEGIN UPDATE change_counter SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS users_changed_delete AFTER DELETE ON users
BEGIN UPDATE change_counter SET generation = generation + 1 WHERE id = 1; END;
