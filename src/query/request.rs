//! Stats API v2 requests (being written).
