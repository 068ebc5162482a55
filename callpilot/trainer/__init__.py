"""The trainer's workbench: the inbox of turns the bot did not handle, data edits, training, model swaps."""
