"""Avatar training: losses, binding-aware densification and its row edits (ops), the trainer, evaluation."""
