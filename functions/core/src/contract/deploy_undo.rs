//! Contract of the `deploy_undo` function (to be filled by its owner).
