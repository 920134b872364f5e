//! Contract of the `plan` function (to be filled by its owner).
