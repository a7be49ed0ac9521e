"""dynamodb"""
