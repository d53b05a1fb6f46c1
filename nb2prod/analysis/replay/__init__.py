"""Preprocess cells with statements on training data, replayed as a generated `preprocess(frame)`.

`module.plan_replay` is the entry point: `walker` sorts the statements (module, function body,
left out, refused), `freeze` finds the training values inside them, `edits` writes the two
versions of each statement (the service's, reading FROZEN, and the run's, recording), `issues`
words the notes and refusals, and `plan` holds the result. Pure AST work: no kernel, no files.
"""
