//! Contract of the `retag` function (to be filled by its owner).
