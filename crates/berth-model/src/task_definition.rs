//! Task definitions. (Being written.)
