"""What running an execution needs, shared by the runner, the workflow executor and external tasks: the components, the retry decisions."""
