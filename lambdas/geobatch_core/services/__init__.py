"""Core services: each public function is one use case, taking its ports through ``Services``."""
