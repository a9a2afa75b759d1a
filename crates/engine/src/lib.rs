//! The engine: runs an execution of a flow, task by task, through the masker.
