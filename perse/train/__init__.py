"""Avatar training: losses, binding-aware densification, the trainer, evaluation."""
