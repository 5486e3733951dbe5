//! market-api library (skeleton; filled in by its issue).
