//! Contract of the `notify` function (to be filled by its owner).
