"""Models: the built-in ResNets and ConvNet, and a registry that also builds the user's own."""
