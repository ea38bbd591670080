//! The HTTP surface, as tower services.
