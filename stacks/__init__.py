"""CDK constructs of GeoBatch: one module per capability, composed by ``geobatch_stack.GeoBatchStack``.

The stacks import ``geobatch_core`` (env keys, S3/SQS layout names) so infrastructure and runtime
code share one spelling of every name; ``app.py`` puts ``lambdas/`` on ``sys.path`` for that.
"""
