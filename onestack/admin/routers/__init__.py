"""One router per API resource group."""
