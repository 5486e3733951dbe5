-- The original's 18 categories, ids 1-18 in this order.
INSERT INTO categories (id, name, code) VALUES
    (1, 'Apparels & Accessories', 'aa'),
    (2, 'Automobiles', 'a'),
    (3, 'Beauty & Health', 'ah'),
    (4, 'Books & Learning', 'bl'),
    (5, 'Business & Industrial', 'bi'),
    (6, 'Computer & Peripherals', 'cp'),
    (7, 'Electronics', 'e'),
    (8, 'Events & Happenings', 'eh'),
    (9, 'Home, Furnishing & Appliances', 'hfa'),
    (10, 'Mobile & Accessories', 'ma'),
    (11, 'Music Instrument', 'mi'),
    (12, 'Pets & Pet Care', 'ppc'),
    (13, 'Real Estate', 're'),
    (14, 'Services', 's'),
    (15, 'Sports & Fitness', 'sf'),
    (16, 'Toys & Video Games', 'tvg'),
    (17, 'Travel, Tour & Packages', 'ttp'),
    (18, 'Others', 'o')
ON CONFLICT DO NOTHING;
