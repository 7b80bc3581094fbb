//! Report PDFs.
