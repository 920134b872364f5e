//! Contract of the `smoke` function (to be filled by its owner).
