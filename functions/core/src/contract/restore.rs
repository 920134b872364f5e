//! Contract of the `restore` function (to be filled by its owner).
