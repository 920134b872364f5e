//! Contract of the `approval` function (to be filled by its owner).
