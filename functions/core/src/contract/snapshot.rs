//! Contract of the `snapshot` function (to be filled by its owner).
