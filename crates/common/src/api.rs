//! The JSON types of the registry API.
