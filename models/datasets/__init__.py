"""Loaders for the real data sets: UCI Heart Disease (EHR), UCI HAPT (wearables), BreastMNIST."""
