//! lab library (skeleton; filled in by its issue).
