"""message"""
