//! Fargate task sizes. (Being written: see task_definition.rs.)
